import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { EVENT_TYPES } from '#payments';
import { type EventView, EventsService } from '#payments';
import { ApiAnswer, ApiErrors } from '../ops/openapi-decorators.js';
import { Roles, SERVICE_ROLES } from './auth.guard.js';
import { ListEventsDto } from './dto/event.dto.js';

/** Merchant events and their deliveries (API.md §10). */
@ApiTags('events')
@ApiBearerAuth()
@ApiErrors(401, 403)
@Controller('api/v1/events')
export class EventsController {
  constructor(private readonly events: EventsService) {}

  @Get()
  @Roles(...SERVICE_ROLES)
  @ApiOperation({ summary: 'Merchant events, newest first' })
  @ApiAnswer(200, 'EventList')
  @ApiQuery({ name: 'orderId', required: false, schema: { type: 'string' } })
  @ApiQuery({ name: 'type', required: false, schema: { type: 'string', enum: [...EVENT_TYPES] } })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 100 } })
  @ApiQuery({ name: 'cursor', required: false, schema: { type: 'string' } })
  @ApiErrors(400)
  list(@Query() q: ListEventsDto): Promise<{ items: EventView[]; nextCursor: string | null }> {
    return this.events.list(q);
  }

  @Get(':id')
  @Roles(...SERVICE_ROLES)
  @ApiOperation({ summary: 'An event with its deliveries' })
  @ApiAnswer(200, 'Event')
  @ApiErrors(404)
  get(@Param('id') id: string): Promise<EventView> {
    return this.events.get(id);
  }

  /** Delivers the event again now, same id and body (operator or admin). */
  @Post(':id/resend')
  @HttpCode(200)
  @Roles('operator', 'admin')
  @ApiOperation({ summary: 'Deliver the event again now (operator or admin)' })
  @ApiAnswer(200, 'Event')
  @ApiErrors(404)
  resend(@Param('id') id: string): Promise<EventView> {
    return this.events.resend(id);
  }
}
