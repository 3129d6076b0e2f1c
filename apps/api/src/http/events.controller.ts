import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { type EventView, EventsService } from '#payments';
import { Roles, SERVICE_ROLES } from './auth.guard.js';
import { ListEventsDto } from './dto/event.dto.js';

/** Merchant events and their deliveries (API.md §10). */
@Controller('api/v1/events')
export class EventsController {
  constructor(private readonly events: EventsService) {}

  @Get()
  @Roles(...SERVICE_ROLES)
  list(@Query() q: ListEventsDto): Promise<{ items: EventView[]; nextCursor: string | null }> {
    return this.events.list(q);
  }

  @Get(':id')
  @Roles(...SERVICE_ROLES)
  get(@Param('id') id: string): Promise<EventView> {
    return this.events.get(id);
  }

  /** Delivers the event again now, same id and body (operator or admin). */
  @Post(':id/resend')
  @HttpCode(200)
  @Roles('operator', 'admin')
  resend(@Param('id') id: string): Promise<EventView> {
    return this.events.resend(id);
  }
}
