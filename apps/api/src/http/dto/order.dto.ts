import {
  Allow,
  IsInt,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  Length,
  Matches,
  Max,
  Min,
  MaxLength,
  IsIP,
} from 'class-validator';
import { JSONSchema } from 'class-validator-jsonschema';
import { ORDER_ID_PATTERN } from '#common';

/** POST /api/v1/orders (API.md §4). Unknown fields are refused by the global ValidationPipe. */
export class CreateOrderDto {
  @IsString() @Length(1, 256) subject: string;
  /** Number or decimal string; parsed strictly by parseAmount (INVALID_AMOUNT on anything else). */
  @JSONSchema({
    oneOf: [{ type: 'number' }, { type: 'string', pattern: '^\\d+(\\.\\d+)?$' }],
    description: 'Major units (yuan for CNY), a JSON number or a decimal string (API.md §3)',
    example: '99.99',
  })
  @Allow()
  amount: unknown;
  @IsOptional()
  @IsString()
  @Matches(ORDER_ID_PATTERN, { message: 'orderId must be 6 to 32 characters of letters, digits, _ and -' })
  orderId?: string;
  @IsOptional()
  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be an ISO 4217 code such as CNY' })
  currency?: string;
  @IsOptional() @IsInt() @Min(1) @Max(21600) timeoutMinutes?: number;
  @IsOptional() @IsISO8601({ strict: true }) expireTime?: string;
  @IsOptional()
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true })
  @MaxLength(1024)
  notifyUrl?: string;
  @IsOptional() @IsObject() metadata?: Record<string, unknown>;
}

/** What a payer's device adds to a pay request, whichever API asks (service API or seed facade). */
class PayerDetailsDto {
  @IsString() @Length(1, 32) payType: string;
  @IsOptional() @IsString() @Length(1, 128) openid?: string;
  @IsOptional() @IsIP() clientIp?: string;
  @IsOptional()
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true })
  @MaxLength(1024)
  returnUrl?: string;
  @IsOptional() @IsString() @Length(1, 256) authCode?: string;
  @IsOptional() @IsString() @Length(1, 64) customerId?: string;
}

export class PayDto extends PayerDetailsDto {
  @IsString() @Length(1, 64) channel: string;
}

export class ClientResultDto {
  @IsString()
  @Matches(/^\d{4}$/, { message: 'resultCode must be a 4-digit my.tradePay or PaymentService code' })
  resultCode: string;
}

export class CheckDto {
  @IsOptional() @IsString() @Length(1, 64) channel?: string;
}

/** The seeds' argument names for the PaySvc facade (API.md §5). */
export class FacadeOrderIdDto {
  @IsString() @Length(1, 64) orderId: string;
  @IsOptional() @IsString() @Length(1, 64) fullName?: string;
}

export class FacadeGetPayUrlDto extends PayerDetailsDto {
  @IsString() @Length(1, 64) orderId: string;
  @IsString() @Length(1, 64) fullName: string;
}

export const FACADE_METHODS = ['create', 'getPayUrl', 'query', 'check', 'cancel', 'refund'] as const;
export type FacadeMethod = (typeof FACADE_METHODS)[number];
export const isFacadeMethod = (m: string): m is FacadeMethod => (FACADE_METHODS as readonly string[]).includes(m);
